"""CLI command families; each module defines click commands that wrap the library."""
