"""Shared plumbing used by both sides (repositories and the migrations runner).

``config`` reads the environment in one place, ``logs`` turns every DynamoDB call into one
structured event, ``errors`` is the exception tree, ``localdb`` runs DynamoDB Local.
"""
