"""Developer accounts of an API platform, compatible with Azure API Management's REST contract."""
