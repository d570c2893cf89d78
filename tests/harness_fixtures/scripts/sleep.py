"""Fixture script: takes far longer than any fence may."""

import time

time.sleep(60)
