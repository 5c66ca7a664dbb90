"""Helpers shared by the bench report scripts (serve_report.py,
all_report.py, and the report that scan.sh runs)."""


def num(x):
    """A number from a TSV field; None for text or NaN."""
    try:
        v = float(x)
    except ValueError:
        return None
    return None if v != v else v


def duration(s):
    """Seconds as a reader wants them: 45 s, 12 min, 19.5 h; ? if unknown."""
    if s is None:
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
