import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI itself imports: one line, as cli.main says any stop
    print("yolox-edge: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
