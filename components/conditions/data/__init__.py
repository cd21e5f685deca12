"""Data files for components.conditions (Microsoft's attribute lists)."""
