"""Message classes generated from proto/ by scripts/gen-python-proto.py. Do not edit."""
