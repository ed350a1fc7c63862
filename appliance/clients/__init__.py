"""A client's sessions over time: records, consent, trends, themes, case conceptualization."""
