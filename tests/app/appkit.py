"""Constants shared by the app tests and their fixtures (a uniquely named module, not conftest)."""

WEB = "https://docs.example.test/repo"
ANSWER = "Start it with label-studio start --no-browser so no tab opens [1]."
