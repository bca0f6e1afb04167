"""The report room: terminal tables (rich) and the self-contained HTML report."""
