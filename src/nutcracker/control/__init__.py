"""Control: what turns a person's or an agent's request into a command (``core.commands``)."""
