"""Reliability: concurrent writers, crashes, database outages, hostile input, shutdown, load."""
