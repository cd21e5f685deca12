"""The App Service / Functions / Container Apps managed-identity endpoint, one listener per app."""
