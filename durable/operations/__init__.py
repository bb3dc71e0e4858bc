"""One module per durable operation; DurableContext's methods call into these."""
