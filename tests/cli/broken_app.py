"""An app module whose import fails (for the bad-app test)."""

raise RuntimeError("this module cannot be imported")
