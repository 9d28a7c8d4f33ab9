"""Mail backends behind one interface."""
