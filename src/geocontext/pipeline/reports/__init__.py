"""What a finished run shows people: report.md, report.html (where it fails, with photos), the
leaderboard of run folders and the side-by-side comparison page."""
