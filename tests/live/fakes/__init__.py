"""Local stand-ins for exchanges and brokers, so the live tests never touch the internet."""
