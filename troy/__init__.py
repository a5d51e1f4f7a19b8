"""troy: a Pilot-Job framework in the TROY / P* style."""
