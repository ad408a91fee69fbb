#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys


def main():
    # The developer's tool: development settings unless told otherwise (containers set production).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "colorizer_site.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
