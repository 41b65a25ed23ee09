"""`python -m o11yctl`."""

from o11yctl._entry import main

main()
