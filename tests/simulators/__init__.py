"""Protocol simulators of the vendors' APIs, as real HTTP servers on loopback."""
