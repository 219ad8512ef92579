"""Use cases: the rules, calling repositories and the mailer through small interfaces."""
