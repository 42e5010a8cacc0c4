"""Static checks of the deployment files (Docker is not available to run them)."""
