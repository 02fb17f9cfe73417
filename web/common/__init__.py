"""What the three HTTP services share: envelope, errors, auth, middlewares, health, start-up."""
