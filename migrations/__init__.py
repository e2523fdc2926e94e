"""Versioned migrations for the table: revision files under ``versions/`` and their runner.

The runner imports nothing from ``models`` except where a command compares the declarations with
the live table; revision files import nothing from ``models`` at all, so an old revision keeps
meaning what it meant.
"""
