"""Versioned migrations for the table: revision files under ``versions/`` and their runner.

``python -m migrations upgrade|downgrade|status|history|plan|check|new`` (``__main__``) is a thin
layer over one function per command (``runner``). Revision files call the operations of
``context.MigrationContext``, which obey DynamoDB's rules for them (``calls``, ``table_settings``,
``backfill``). The runner imports nothing from ``models`` except in ``check`` and
``new --autogenerate`` (``declared``); revision files import nothing from ``models`` at all, so an
old revision keeps meaning what it meant.

The ledger
----------
The ledger and the lock live in their own table, ``<TABLE_NAME>-migrations`` (hash key ``PK``, a
string; on-demand), created by the first ``upgrade``: the first revision creates the application
table, so the ledger must exist before it. Its items::

    PK                                   attributes
    REVISION#<id>                        Revision, Message, Status (running | applied | failed),
                                         At, By (the runner), Error (traceback of a failure)
    EVENT#<iso time>#<random>            Revision, Action (upgrade | downgrade), Outcome (applied |
                                         failed | reverted), At, By, Error: the history, append-only
    LOCK                                 Owner (host:pid:random), ExpiresAt (epoch seconds),
                                         AcquiredAt: the lease (``lock.py``)
    TTL#<table>                          ChangedAt, Enabled, AttributeName, Revision, TableCreatedAt
                                         (which incarnation of the table): the last TTL change
    BACKFILL#<rev>#<name>                RunId, Segments, Status (running | done | failed),
                                         StartedAt, FinishedAt: one backfill run
    BACKFILL#<rev>#<name>#<segment>      Position (the scan's LastEvaluatedKey as JSON; absent at
                                         the start), Done, Scanned, Updated, Unchanged, Failed,
                                         Failures (list of {"key", "reason"}), SavedAt

The current revision is the last of the unbroken run of ``applied`` revisions from base: it never
moves past a ``failed`` or ``running`` (crashed) one, and the next ``upgrade`` starts there.
A downgrade deletes the revision's ``REVISION#`` item and its backfill checkpoints and logs a
``reverted`` event. Items a backfill with ``mark=True`` changed carry ``MigrationRun`` (the run id)
in the application table.

While a runner holds the lock, every ledger write it makes is a ``TransactWriteItems`` with a
``ConditionCheck`` on ``LOCK`` (``Owner`` is this runner, the lease has not run out): a runner
that lost the lock writes nothing more (``lock.Lock.fenced_write``). The ledger must agree with
the versions directory: a revision it records that the directory lacks, or an applied revision
after one that is not (a gap), is refused rather than guessed at (``revisions.position``).
"""
