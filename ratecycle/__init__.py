"""ratecycle: the command line and the nightly job that wire the stages together."""
