"""The sandbox's Instance Metadata Service token endpoint, one listener per VM."""
