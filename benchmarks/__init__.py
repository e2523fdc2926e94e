"""Benchmarks (``make bench``): the data layer against bare PynamoDB and raw botocore."""
