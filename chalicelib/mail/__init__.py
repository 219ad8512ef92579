"""Email: the APIM template set, sandboxed rendering, and sending through SES."""
