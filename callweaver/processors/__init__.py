"""Built-in processors. Each module holds one processor (or one family of tiny ones)."""
