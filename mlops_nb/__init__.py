"""mlops_nb."""
