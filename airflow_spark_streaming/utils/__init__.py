"""Small helpers used across the provider: parameter validation, secret redaction, deprecations."""
