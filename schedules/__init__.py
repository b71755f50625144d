"""Periodic and background work on the Application's event loop (JobQueue and the delivery worker)."""
