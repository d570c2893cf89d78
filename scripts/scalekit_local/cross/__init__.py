"""What both transports share beside the state: events and their webhook deliveries, the mailbox of
emails the environment would send, injected faults, and the error details of a gRPC answer."""
