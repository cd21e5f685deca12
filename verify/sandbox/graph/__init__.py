"""The sandbox's Microsoft Graph slice: service principals."""
