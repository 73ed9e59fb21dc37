"""Channel programs that feed intake over AMQP with pika only (no nameko, no eventlet):
the 12345 hotline bridge (hotline.py) and an IoT sensor feed simulator (sensor_feed.py)."""
