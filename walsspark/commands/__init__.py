"""What each walsspark subcommand does once its arguments are parsed and checked."""
