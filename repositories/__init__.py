"""Access patterns: one module per aggregate, each pattern one typed function.

Every DynamoDB call of an application lives here. Functions validate their input before they send
anything and raise the errors of ``repositories.errors``.
"""
