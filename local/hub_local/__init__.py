"""Docker-free local runner: serves whatever template.yaml declares on 127.0.0.1 (moto, gateway, queue pump)."""
