"""The MQTT broker's access control (Mosquitto 2's dynamic-security plugin): who may connect and on which topics."""
