"""Mechanisms shared by the gateway and every service; no domain rules live here."""
