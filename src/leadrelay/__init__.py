"""leadrelay: a self-hosted pay-per-lead and performance-marketing platform."""

__version__ = "0.1.0"
