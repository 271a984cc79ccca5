"""Identity: accounts, sessions, roles, devices, meters, device challenges and the mailer."""
