"""The node agent: measures a node and its pods and sends payloads to the server."""
