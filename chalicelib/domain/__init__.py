"""Pure rules: no chalice, boto3 or pynamodb imports here."""
