"""Helpers the tests share: real servers (SMTP, FCM), isolated resources, process runners."""
