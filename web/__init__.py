"""Herald's HTTP services: the gateway and the user and template services, one process each."""
