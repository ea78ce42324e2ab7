"""What every subcommand module shares: exit codes, the --data argument, running servers."""

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
SERVE_STOP: list = []  # events of running `serve` commands: set one to stop that server (tests run it in a thread)


def add_data(p, name="--data", required=True, help_text="image folder, .npy array or image file"):
    p.add_argument(name, required=required, help=help_text)
