"""gnnrl.core.agents"""
