"""Two runs or many: paired differences between revisions, the spread over reseeds."""
