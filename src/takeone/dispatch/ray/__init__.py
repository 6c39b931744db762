"""Worker actors on a Ray cluster (cluster mode): the database stays the queue, Ray only
places and restarts long-lived GPU workers. Ray is imported when a pool starts, not here.
"""
