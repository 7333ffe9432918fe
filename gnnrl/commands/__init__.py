"""gnnrl.commands"""
